"""Keras 3 model configs: converting them to minidl's (Keras 2 style) configs and back.

Keras 3 serializes objects as ``{"module", "class_name", "config", "registered_name"}``, dtypes
as ``DTypePolicy`` objects, the input as ``InputLayer(batch_shape=...)`` and functional inbound
nodes as ``{"args": [...], "kwargs": {...}}``. ``from_keras3`` turns such a config into one
minidl builds: keys minidl does not know are dropped when they hold a value that changes
nothing (None, False, Keras' defaults) and raise, naming the key, otherwise.
``keras3_model_config`` writes a minidl model's config the way Keras 3 reads it. The weight
groups of a Keras 3 file are named after layer classes (``_group_names``).

>>> from_keras3({"module": "keras.layers", "class_name": "Dense", "registered_name": None,
...              "config": {"name": "d", "units": 2, "quantization_config": None}})
{'class_name': 'Dense', 'config': {'name': 'd', 'units': 2}}
"""

from __future__ import annotations

import inspect
import re
from typing import Any

# Keras 3 layer arguments minidl does not take, and the values that change nothing.
NEUTRAL_VALUES: dict[str, tuple[Any, ...]] = {
    "groups": (1,),
    "synchronized": (False,),
    "renorm": (False,),
    "renorm_clipping": (None,),
    "renorm_momentum": (0.99,),
    "optional": (False,),
    "sparse": (False,),
    "ragged": (False,),
    "input_axes": (None,),
    "output_axes": (None,),
    "quantization_config": (None,),
    "lora_rank": (None,),
    "lora_alpha": (None,),
    "build_config": None,  # any value: minidl builds from the graph
    "compile_config": None,
    "shared_object_id": None,
}
OBJECT_MODULES = {
    "initializer": "keras.initializers",
    "regularizer": "keras.regularizers",
    "constraint": "keras.constraints",
}


# --------------------------------------------------------------------- Keras 3 -> minidl
def is_keras3_config(spec: Any) -> bool:
    """Whether a model config was written by Keras 3: a serialized object carries
    ``module``/``registered_name`` beside ``class_name`` and ``config`` (a ``module`` key
    alone, as in a Keras 2 ``Lambda`` config, does not count)."""
    pending = [spec]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            if "class_name" in item and "config" in item and "registered_name" in item:
                return True
            if item.get("class_name") in ("__keras_tensor__", "DTypePolicy"):
                return True
            pending.extend(item.values())
    return False


def _policy_dtype(value: Any) -> Any:
    """A ``DTypePolicy`` object as its dtype name (mixed precision is refused)."""
    if isinstance(value, dict) and value.get("class_name") in ("DTypePolicy", "Policy"):
        name = (value.get("config") or {}).get("name")
        if not isinstance(name, str) or name.startswith("mixed_"):
            raise ValueError(
                "minidl layers compute in one float dtype; a mixed-precision dtype policy is "
                f"not supported. Received: dtype policy {name!r}"
            )
        return name
    return value


def _tensor_reference(value: Any, where: str) -> list[Any]:
    if not (isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"):
        raise ValueError(
            f"{where}: a Keras 3 inbound node argument must be a symbolic tensor. "
            f"Received: {str(value)[:200]}"
        )
    history = (value.get("config") or {}).get("keras_history")
    if not (isinstance(history, list) and len(history) == 3):
        raise ValueError(f"{where}: a tensor without keras_history. Received: {value!r}")
    return list(history)


def _inbound_nodes(nodes: Any, where: str) -> list[list[list[Any]]]:
    """Keras 3's ``[{"args": [...], "kwargs": {...}}]`` as Keras 2's nested lists."""
    converted = []
    for node in nodes or []:
        if isinstance(node, list):  # already Keras 2's layout
            converted.append(node)
            continue
        if not isinstance(node, dict) or not isinstance(node.get("args"), list):
            raise ValueError(f"{where}: unreadable inbound node. Received: {str(node)[:200]}")
        args, kwargs = node["args"], dict(node.get("kwargs") or {})
        if len(args) != 1:
            raise ValueError(
                f"{where}: a layer called with {len(args)} positional arguments is not "
                f"supported. Received: {str(args)[:200]}"
            )
        first = args[0]
        tensors = first if isinstance(first, list) else [first]
        converted.append([[*_tensor_reference(t, where), kwargs] for t in tensors])
    return converted


def _io_layers(value: Any) -> Any:
    """``["x", 0, 0]`` (Keras 3, one tensor) as ``[["x", 0, 0]]``."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [value]
    return value


def _accepted_arguments(cls: type) -> set[str] | None:
    """Constructor arguments of ``cls`` and its bases (None: it takes anything)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        init = inspect.unwrap(init)
        try:
            parameters = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if klass.__name__ == "Layer":
            break
    return names - {"self"}


def _layer_config(class_name: str, config: dict[str, Any], where: str) -> dict[str, Any]:
    """Convert one Keras 3 layer config to minidl's, dropping neutral unknown keys."""
    from minidl import layers

    config = {key: from_keras3(value, key) for key, value in config.items()}
    if "dtype" in config:
        config["dtype"] = _policy_dtype(config["dtype"])
    if class_name == "InputLayer" and "batch_shape" in config:
        config["batch_input_shape"] = config.pop("batch_shape")
    try:
        cls = layers.get_layer_class(class_name)
    except ValueError:  # initializers and the like: drop Keras 3's neutral extras
        return {k: v for k, v in config.items() if not (k in NEUTRAL_VALUES and _neutral(k, v))}
    accepted = _accepted_arguments(cls)
    if accepted is None:
        return config
    for key in [k for k in config if k not in accepted]:
        if _neutral(key, config[key]):
            config.pop(key)
            continue
        raise ValueError(
            f"{where}: Keras 3 argument `{key}` of layer {config.get('name')!r} "
            f"({class_name}) is not supported by minidl. Received: {key}={config[key]!r}"
        )
    return config


def _neutral(key: str, value: Any) -> bool:
    """Whether a Keras 3 argument minidl lacks holds a value that changes nothing."""
    neutral = NEUTRAL_VALUES.get(key, (None, False))
    return neutral is None or any(value is n or value == n for n in neutral)


def keras3_training_config(config: dict[str, Any]) -> dict[str, Any]:
    """Drop Keras 3's ``training_config`` keys that change nothing; refuse others."""
    config = dict(config)
    for key, neutral in (
        ("run_eagerly", False),
        ("steps_per_execution", 1),
        ("jit_compile", False),
    ):
        if key in config:
            value = config.pop(key)
            if value not in (neutral, None, "auto"):
                raise ValueError(
                    f"Keras 3 training setting `{key}` is not supported. Received: {value!r}"
                )
    return config


def from_keras3(value: Any, key: str = "", where: str = "Keras 3 config") -> Any:
    """Convert a Keras 3 serialized object (or a part of one) to minidl's config layout."""
    if isinstance(value, list):
        return [from_keras3(v, key, where) for v in value]
    if not isinstance(value, dict):
        return value
    if key == "dtype" or value.get("class_name") in ("DTypePolicy", "Policy"):
        return _policy_dtype(value)
    if "class_name" in value and "config" in value:
        class_name = value["class_name"]
        if class_name == "Functional":
            class_name = "Model"
        config = value["config"]
        if isinstance(config, dict) and ("layers" in config and "name" in config):
            config = _model_config(config, where)
        elif isinstance(config, dict):
            config = _layer_config(class_name, config, where)
        out: dict[str, Any] = {"class_name": class_name, "config": config}
        if "name" in value:
            out["name"] = value["name"]
        if "inbound_nodes" in value:
            out["inbound_nodes"] = _inbound_nodes(value["inbound_nodes"], where)
        return out
    return {k: from_keras3(v, k, where) for k, v in value.items() if k != "shared_object_id"}


def _model_config(config: dict[str, Any], where: str) -> dict[str, Any]:
    converted = {
        key: from_keras3(value, key, where)
        for key, value in config.items()
        if key not in ("dtype", "trainable", "build_input_shape") or key == "trainable"
    }
    for key in ("input_layers", "output_layers"):
        if key in converted:
            converted[key] = _io_layers(converted[key])
    converted.pop("trainable", None)
    return converted


# --------------------------------------------------------------------- minidl -> Keras 3
def _snake_case(name: str) -> str:
    """Keras 3's ``to_snake_case`` of a class name (``MaxPooling2D`` -> ``max_pooling2d``)."""
    text = re.sub(r"\W+", "", name)
    text = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", text)
    return re.sub("([a-z])([A-Z])", r"\1_\2", text).lower()


def _policy(dtype: str) -> dict[str, Any]:
    return {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": dtype},
        "registered_name": None,
    }


def _object_module(key: str) -> str | None:
    for suffix, module in OBJECT_MODULES.items():
        if key.endswith(suffix):
            return module
    return None


def _keras3_layer(spec: dict[str, Any], tensors: dict[str, Any] | None = None) -> dict[str, Any]:
    """One minidl layer entry (``class_name``/``config``[/``inbound_nodes``]) as Keras 3's."""
    class_name, config = spec["class_name"], dict(spec["config"])
    dtype = config.pop("dtype", "float32")
    config.pop("batch_input_shape", None)
    if class_name == "InputLayer":
        shape = spec["config"].get("batch_input_shape")
        config = {"batch_shape": shape, "dtype": dtype, "sparse": False, "name": config["name"]}
    else:
        for key, value in list(config.items()):
            module = _object_module(key)
            if module and isinstance(value, dict) and "class_name" in value:
                config[key] = {**value, "module": module, "registered_name": None}
        config["dtype"] = _policy(dtype)
    out: dict[str, Any] = {
        "module": "keras.layers",
        "class_name": class_name,
        "config": config,
        "registered_name": None,
    }
    if "inbound_nodes" in spec:
        out["name"] = spec.get("name", config.get("name"))
        out["inbound_nodes"] = [_keras3_node(node, tensors or {}) for node in spec["inbound_nodes"]]
    return out


def _keras3_node(node: list[list[Any]], layers: dict[str, Any]) -> dict[str, Any]:
    """Keras 2's node (``[[layer, node, tensor, kwargs], ...]``) as Keras 3's args/kwargs."""
    tensors = []
    for entry in node:
        name, node_index, tensor_index = entry[:3]
        tensor = layers[name].inbound_nodes[node_index].outputs[tensor_index]
        history = {"shape": list(tensor.shape), "dtype": tensor.dtype}
        history["keras_history"] = [name, node_index, tensor_index]
        tensors.append({"class_name": "__keras_tensor__", "config": history})
    kwargs = node[0][3] if node and len(node[0]) > 3 else {}
    return {"args": [tensors if len(tensors) > 1 else tensors[0]], "kwargs": kwargs}


def keras3_model_config(model: Any) -> dict[str, Any]:
    """The Keras 3 ``config.json`` object of a minidl ``Sequential`` or ``Model``."""
    from minidl.engine.serialization import serialize_layer

    spec = serialize_layer(model)
    config = spec["config"]
    by_name = {layer.name: layer for layer in _weight_layers(model)}
    if type(model).__name__ == "Sequential":
        first = model.layers[0]
        input_layer = {
            "class_name": "InputLayer",
            "config": {
                "name": f"{first.name}_input",
                "batch_input_shape": list(model.inputs[0].shape),
                "dtype": model.inputs[0].dtype,
            },
        }
        layers = [_keras3_layer(input_layer)] + [_keras3_layer(s) for s in config["layers"]]
        return {
            "module": "keras",
            "class_name": "Sequential",
            "config": {
                "name": config["name"],
                "trainable": True,
                "dtype": _policy(model.inputs[0].dtype),
                "layers": layers,
            },
            "registered_name": None,
        }
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": config["name"],
            "trainable": True,
            "layers": [_keras3_layer(s, by_name) for s in config["layers"]],
            "input_layers": config["input_layers"],
            "output_layers": config["output_layers"],
        },
        "registered_name": "Functional",
    }


def _weight_layers(model: Any) -> list[Any]:
    """Layers in the order Keras 3 names their weight groups (inputs too, for graph models)."""
    if type(model).__name__ == "Sequential":
        return list(model.layers)
    plan_layers = getattr(getattr(model, "_plan", None), "layers", None)
    return list(plan_layers) if plan_layers is not None else list(model.layers)


def _group_names(layers: list[Any]) -> list[str]:
    used: dict[str, int] = {}
    names = []
    for layer in layers:
        name = _snake_case(type(layer).__name__)
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        names.append(name)
    return names
