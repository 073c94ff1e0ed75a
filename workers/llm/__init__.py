"""Remote LLM runs on the `io` queue: provider clients (clients), the function-calling loop
(loop) and tool execution (tools). The kind's web side is apps/runs/kinds/llm.py."""
