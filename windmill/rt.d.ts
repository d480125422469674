// Resource types the TypeScript scripts take (`RT.PrefectApi` is the resource type `prefect_api`).
// Hand-written in the form `wmill resource-type generate-namespace` produces; keep it in step with
// prefect_api.resource-type.yaml.
declare namespace RT {
  type PrefectApi = {
    base_url: string;
    api_key?: string;
    auth_string?: string;
  };
}
