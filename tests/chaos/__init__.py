# Where tests/chaos/side_effects.py, loaded into worker processes, counts executions.
COUNTER_KEY = "chaos:executions"
