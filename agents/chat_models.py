"""The chat-model registry: an OpenAI-compatible endpoint or a built-in strategy, from config."""

from __future__ import annotations

import os
from collections.abc import Mapping

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from configs.loader import ModelConfig
from models.errors import ModelSetupError


def api_key_for(config: ModelConfig, environ: Mapping[str, str] | None = None) -> SecretStr:
    """The model's API key from the environment variable its config names (a placeholder for
    a local endpoint that takes none: the client insists on some key)."""
    if config.api_key_env is None:
        return SecretStr("no-key")
    environ = os.environ if environ is None else environ
    value = environ.get(config.api_key_env, "").strip()
    if not value:
        raise ModelSetupError(
            f"model {config.name!r} needs an API key in the environment variable "
            f"{config.api_key_env}, which is not set"
        )
    return SecretStr(value)


def trial_seed(config: ModelConfig, trial: int) -> int | None:
    """The sampling seed an endpoint gets in trial `trial` of a repeated backtest.

    None for trial 1: its requests stay exactly what they are without trials, whatever the run's
    trial count, so trial 1's portfolio (shared by runs with and without trials) never mixes
    seeded and unseeded days. Trials 2 and on send a seed derived from the model and the trial
    (31 bits: any endpoint that takes a seed takes that); an endpoint that ignores `seed` still
    gives independent samples, one that refuses it fails those trials with its own message.
    """
    if trial == 1:
        return None
    from agents.strategies import stable_seed

    return stable_seed("trial", trial, config.name) % 2**31


def build_chat_model(
    config: ModelConfig, environ: Mapping[str, str] | None = None, trial: int = 1
) -> BaseChatModel:
    """The LangChain chat model a config describes, for trial `trial` of a repeated backtest."""
    if config.kind == "strategy":
        from agents.strategies import build_strategy

        try:
            return build_strategy(config.strategy or "", config.name, config.params, trial=trial)
        except ValueError as exc:
            raise ModelSetupError(f"model {config.name!r}: {exc}") from None

    from langchain_openai import ChatOpenAI

    # The OpenAI client retries 408/409/429/5xx, timeouts and connection errors itself, with
    # exponential backoff and jitter, honouring Retry-After; `timeout` bounds every attempt.
    return ChatOpenAI(
        model=config.basemodel,
        base_url=config.base_url,
        api_key=api_key_for(config, environ),
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        timeout=config.timeout_s,
        max_retries=config.max_retries,
        default_headers=config.headers or None,
        stream_usage=True,
        seed=trial_seed(config, trial),
    )
