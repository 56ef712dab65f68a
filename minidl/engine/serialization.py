"""Layer and model configs in Keras 2's layout, and rebuilding graphs from them.

A graph model's config is ``{"name", "layers", "input_layers", "output_layers"}``; each layer
entry is ``{"name", "class_name", "config", "inbound_nodes"}`` and each inbound node a list of
``[layer_name, node_index, tensor_index, kwargs]``. As in Keras 2, a model used as a layer
counts its own graph as node 0, so its first call inside another model is node 1. Rebuilding
only calls constructors (``from_config``); nothing from the file is executed.
"""

from __future__ import annotations

import inspect
from typing import Any

NETWORK_CLASSES: dict[str, type] = {}
# Keras 2 (and tf.keras) write these keys at their defaults; minidl's constructors may not
# take them, so they are dropped when they hold exactly these values.
KERAS2_DEFAULTS: dict[str, Any] = {
    "activity_regularizer": None,
    "kernel_constraint": None,
    "bias_constraint": None,
    "beta_constraint": None,
    "gamma_constraint": None,
    "beta_regularizer": None,
    "gamma_regularizer": None,
    "sparse": False,
    "ragged": False,
    "synchronized": False,
    "groups": 1,
}


def register_network_class(cls: type) -> None:
    """Make ``cls`` (a model class) known to ``deserialize_layer`` by its class name."""
    NETWORK_CLASSES[cls.__name__] = cls


def _is_network(layer: Any) -> bool:
    return type(layer).__name__ in NETWORK_CLASSES or hasattr(layer, "_plan")


def _accepts_custom_objects(method: Any) -> bool:
    try:
        return "custom_objects" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _strip_keras2_defaults(cls: type, config: dict[str, Any]) -> dict[str, Any]:
    """Drop Keras 2 keys left at their defaults (``KERAS2_DEFAULTS``) that ``cls`` does not take."""
    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return config
    for key, default in KERAS2_DEFAULTS.items():
        value = config.get(key, default)
        if key in config and key not in parameters and type(value) is type(default):
            if value == default:
                config.pop(key)
    return config


def deserialize_layer(spec: Any, custom_objects: dict[str, Any] | None = None) -> Any:
    """Rebuild a layer or a model from ``{"class_name", "config"}``.

    ``custom_objects`` maps class names to classes (and names to functions for layers such
    as ``Lambda``, whose ``from_config`` receives it).
    """
    from minidl import layers

    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str):
        raise ValueError(
            f'A layer description must be a dict with "class_name" and "config". Received: {spec!r}'
        )
    class_name = spec["class_name"]
    if class_name == "Functional":  # tf.keras' name for a graph Model
        class_name = "Model"
    config = spec.get("config") or {}
    if not isinstance(config, (dict, list)):
        raise ValueError(
            f"The config of a {class_name!r} layer must be a dict. Received: {config!r}"
        )
    config = dict(config) if isinstance(config, dict) else config
    if custom_objects and class_name in custom_objects:
        cls = custom_objects[class_name]
    elif class_name in NETWORK_CLASSES:
        cls = NETWORK_CLASSES[class_name]
    else:
        cls = layers.get_layer_class(class_name)
    if isinstance(config, dict):
        config = _strip_keras2_defaults(cls, config)
    if _accepts_custom_objects(cls.from_config):
        return cls.from_config(config, custom_objects=custom_objects)
    return cls.from_config(config)


def serialize_layer(layer: Any) -> dict[str, Any]:
    """``{"class_name", "config"}`` of a layer or a model."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


# ----------------------------------------------------------------- graph configs
def _node_indices(model: Any) -> dict[int, int]:
    """Config index of each node of ``model``'s graph, per layer (Keras 2's numbering)."""
    in_graph = {id(node) for node in model._plan.nodes}
    indices: dict[int, int] = {}
    for layer in model.layers:
        kept = 1 if _is_network(layer) else 0
        for node in layer.inbound_nodes:
            if id(node) in in_graph:
                indices[id(node)] = kept
                kept += 1
    return indices


def _tensor_reference(tensor: Any, indices: dict[int, int]) -> list[Any]:
    layer, _, tensor_index = tensor._keras_history
    return [layer.name, indices[id(tensor.node)], tensor_index]


def network_config(model: Any) -> dict[str, Any]:
    """Keras 2's config of a graph model (see the module docstring)."""
    indices = _node_indices(model)
    in_graph = {id(node) for node in model._plan.nodes}
    layer_configs = []
    for layer in model.layers:
        inbound = []
        for node in layer.inbound_nodes:
            if id(node) not in in_graph or not node.inputs:
                continue
            inbound.append(
                [[*_tensor_reference(t, indices), dict(node.call_kwargs)] for t in node.inputs]
            )
        layer_configs.append(
            {
                "name": layer.name,
                "class_name": type(layer).__name__,
                "config": layer.get_config(),
                "inbound_nodes": inbound,
            }
        )
    config: dict[str, Any] = {
        "name": model.name,
        "layers": layer_configs,
        "input_layers": [_tensor_reference(t, indices) for t in model.inputs],
        "output_layers": [_tensor_reference(t, indices) for t in model.outputs],
    }
    if not model.trainable:
        config["trainable"] = False
    return config


def _field(config: dict[str, Any], key: str, kind: type) -> Any:
    value = config.get(key)
    if not isinstance(value, kind):
        raise ValueError(
            f"A Model config needs {key!r} as a {kind.__name__}. Received: {key}={value!r}"
        )
    return value


def _reference(entry: Any, where: str) -> tuple[str, int, int, dict[str, Any]]:
    """``[layer_name, node_index, tensor_index(, kwargs)]`` checked for types."""
    if (
        not isinstance(entry, (list, tuple))
        or len(entry) not in (3, 4)
        or not isinstance(entry[0], str)
        or any(isinstance(v, bool) or not isinstance(v, int) for v in entry[1:3])
        or (len(entry) == 4 and not isinstance(entry[3], dict))
    ):
        raise ValueError(
            f"{where} must be [layer_name, node_index, tensor_index(, kwargs)]. Received: {entry!r}"
        )
    kwargs = dict(entry[3]) if len(entry) == 4 else {}
    return entry[0], int(entry[1]), int(entry[2]), kwargs


def graph_from_config(
    config: dict[str, Any], custom_objects: dict[str, Any] | None = None
) -> tuple[list[Any], list[Any], str | None]:
    """Rebuild the layers of a Model config and call them; return ``(inputs, outputs, name)``."""
    if not isinstance(config, dict):
        raise ValueError(f"A Model config must be a dict. Received: {type(config).__name__}")
    layer_specs = _field(config, "layers", list)
    created: dict[str, Any] = {}
    pending: list[tuple[Any, list[Any]]] = []
    for spec in layer_specs:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ValueError(f"Each layer of a Model config needs a name. Received: {spec!r}")
        if spec["name"] in created:
            raise ValueError(
                f"All layer names in a Model config must be unique. Received: {spec['name']!r} "
                "twice"
            )
        try:
            layer = deserialize_layer(spec, custom_objects)
        except (TypeError, ValueError) as err:
            kind = spec.get("class_name")
            raise type(err)(f"Layer {spec['name']!r} ({kind}) of the Model config: {err}") from None
        created[spec["name"]] = layer
        nodes = spec.get("inbound_nodes") or []
        if not isinstance(nodes, list):
            raise ValueError(
                f"Layer {spec['name']!r}: `inbound_nodes` must be a list. "
                f"Received: inbound_nodes={nodes!r}"
            )
        pending.append((layer, list(nodes)))
    # Keras 2's loop: call each layer on its inputs once the nodes they come from exist
    progress = True
    while progress and any(nodes for _, nodes in pending):
        progress = False
        for layer, nodes in pending:
            while nodes and _try_node(layer, nodes[0], created):
                nodes.pop(0)
                progress = True
    stuck = [(layer.name, nodes[0]) for layer, nodes in pending if nodes]
    if stuck:
        raise ValueError(
            f"A Model config refers to layer calls that do not exist. Received: layer "
            f"{stuck[0][0]!r} with inbound node {stuck[0][1]!r}"
        )

    def tensors(key: str) -> list[Any]:
        result = []
        for entry in _field(config, key, list):
            name, node_index, tensor_index, _ = _reference(entry, f"An entry of {key!r}")
            result.append(_tensor(created, name, node_index, tensor_index, key))
        return result

    return tensors("input_layers"), tensors("output_layers"), config.get("name")


def _tensor(created: dict[str, Any], name: str, node_index: int, index: int, where: str) -> Any:
    layer = created.get(name)
    if layer is None:
        raise ValueError(f"{where} refers to an unknown layer. Received: {name!r}")
    position = node_index - (1 if _is_network(layer) else 0)
    if not 0 <= position < len(layer.inbound_nodes):
        raise ValueError(
            f"{where} refers to call {node_index} of layer {name!r}, which does not exist. "
            f"Received: node_index={node_index}"
        )
    outputs = layer.inbound_nodes[position].outputs
    if not 0 <= index < len(outputs):
        raise ValueError(
            f"{where} refers to output {index} of layer {name!r}, which has {len(outputs)}. "
            f"Received: tensor_index={index}"
        )
    return outputs[index]


def _try_node(layer: Any, node_data: Any, created: dict[str, Any]) -> bool:
    """Call ``layer`` on the tensors ``node_data`` names; False if one does not exist yet."""
    if not isinstance(node_data, list) or not node_data:
        raise ValueError(
            f"Layer {layer.name!r}: each inbound node must be a non-empty list. "
            f"Received: {node_data!r}"
        )
    inputs = []
    kwargs: dict[str, Any] = {}
    for entry in node_data:
        name, node_index, index, kwargs = _reference(entry, f"An inbound node of {layer.name!r}")
        source = created.get(name)
        if source is None:
            raise ValueError(
                f"Layer {layer.name!r} is called on a layer the config does not define. "
                f"Received: {name!r}"
            )
        position = node_index - (1 if _is_network(source) else 0)
        if position >= len(source.inbound_nodes):
            return False
        inputs.append(_tensor(created, name, node_index, index, f"layer {layer.name!r}"))
    training = kwargs.get("training")
    layer(inputs[0] if len(inputs) == 1 else inputs, training=training)
    return True
