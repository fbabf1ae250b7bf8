"""crowdfix benchmarks: each prints its figures beside the baseline measured in the same run."""
