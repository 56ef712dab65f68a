"""The machinery behind ``Model`` and ``Sequential``: graph, compiled steps, data, loops.

Imports point one way: ``node`` (symbolic tensors) < ``layers.base`` < ``graph`` <
``network`` (a model is a layer) < ``model`` (training) < ``sequential``; ``serialization``
rebuilds configs from a registry of model classes, so ``saving`` never imports ``models``.
"""
