"""clientsim's Hydra plugins: the designed sweeper (`hydra/sweeper=designed`)."""
