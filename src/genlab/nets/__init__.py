"""Network architectures (plain ``nn.Module``s); the LightningModules in ``genlab.models`` build them."""
