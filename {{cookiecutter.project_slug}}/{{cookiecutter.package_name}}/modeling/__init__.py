"""The base model: its loading, the layers LoRA adapts in each architecture, and the adapter."""
