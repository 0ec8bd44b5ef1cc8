"""Loss functions: GAN objectives and penalties, VAE likelihoods and divergences."""
