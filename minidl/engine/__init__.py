"""The machinery behind ``Sequential``: layer stacking, compiled steps, data adapters, loops."""
