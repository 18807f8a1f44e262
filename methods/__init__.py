"""Built-in methods, one module each; ``lpsr.registry`` imports them by module name."""
