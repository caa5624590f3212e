"""Many runs: sweeps (jobs, points, tables, collect), experiment designs, Slurm submission."""
