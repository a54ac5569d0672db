"""The model organism: a small Llama-architecture base agent and its defense-trained twin, trained by the project's
own recipe on its own tool-call data."""
