"""EB-NeRD data layer: schema, split loading and validation, synthetic data, prepare."""
