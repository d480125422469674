# Shortcuts for quickstart.py, which needs only python3.
.PHONY: run test
run:
	python3 quickstart.py run
test:
	python3 quickstart.py test
