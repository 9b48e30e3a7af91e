"""Training commands: video model and diffusion policy."""
