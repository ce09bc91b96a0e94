"""Training code (estimator head, refiner, audio head). Not imported by the inference path."""
