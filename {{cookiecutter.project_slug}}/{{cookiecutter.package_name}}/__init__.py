"""FlowerTune LLM Medical baseline: federated LoRA/DoRA instruction tuning with Flower."""
