"""FlowerTune LLM baseline: federated LoRA/DoRA instruction tuning with Flower."""
