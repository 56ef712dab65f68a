"""theano."""
