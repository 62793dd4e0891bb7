"""Training with DeepSpeed on one CPU, one GPU or many SLURM nodes."""
