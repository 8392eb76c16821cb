"""Templates: the model, the scene library, and binding a record to a render plan."""
