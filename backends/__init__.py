"""minidl's backends: the contract (``interface``), the registry, shared shape helpers, and one
package per backend (``numpy``, ``theano``, ``tensorflow``).

This folder is installed as ``minidl.backends`` (see ``package_dir`` in ``setup.cfg``).
"""
