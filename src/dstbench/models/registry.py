"""The model registry: name -> builder function, plus the input shape and classes the paper pairs it with.

A builder is a function with keyword-only arguments. The keywords it declares say what it needs:

- ``num_classes: int`` — the width of the output layer;
- ``in_channels: int`` and ``input_size: tuple[int, int]`` — an image model (input ``(N, C, H, W)``);
- ``in_features: int`` — a model that flattens its input (``(N, F)`` or any ``(N, ...)`` with ``F`` elements);
- ``dropout: float`` — dropout after each hidden activation (models without it only accept ``dropout=0``);
- any other keyword is a model option (``build("small_cnn", padding=0)``).

`build` fills every keyword the caller leaves out from the model's defaults, so a builder always receives
concrete values, and rejects what cannot work with an error that names the model, the value and the fix.
"""

from __future__ import annotations

import inspect
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

Builder = Callable[..., nn.Module]
InputKind = Literal["image", "vector", "none"]

# Keywords `build` resolves itself; every other keyword-only parameter of a builder is a model option.
_SIZE_KEYS = ("num_classes", "in_channels", "input_size", "in_features", "dropout")


@dataclass(frozen=True)
class ModelInfo:
    """What a registered model is and which data the paper trains it on.

    `input_shape` is one example without the batch dimension, ``(C, H, W)`` or ``(F,)``: the default input when
    `build` is given no sizes. `input_kind` says what the model accepts: "image" needs ``(N, C, H, W)``;
    "vector" flattens any input, so an image data set works with it (``in_features = C * H * W``).
    """

    name: str
    input_kind: InputKind
    input_shape: tuple[int, ...] | None
    num_classes: int | None
    dataset: str | None
    options: dict[str, Any]
    description: str

    def build_kwargs(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        """The `build` keywords that feed this model examples of `input_shape` (a data set's shape, no batch).

        Raises ValueError when an image model is given a shape that is not ``(C, H, W)``.
        """
        if self.input_kind == "vector":
            return {"in_features": math.prod(input_shape)}
        if self.input_kind == "image":
            if len(input_shape) != 3:
                raise ValueError(
                    f"model {self.name!r} is convolutional and needs image inputs (C, H, W); "
                    f"got examples of shape {tuple(input_shape)}"
                )
            return {"in_channels": input_shape[0], "input_size": (input_shape[1], input_shape[2])}
        return {}


_MODELS: dict[str, tuple[Builder, ModelInfo]] = {}


def _keyword_parameters(builder: Builder) -> dict[str, inspect.Parameter]:
    params = inspect.signature(builder).parameters
    positional = [p.name for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if positional:
        raise TypeError(
            f"model builder {builder.__name__!r} must take keyword-only arguments (add '*,' before "
            f"{', '.join(positional)})"
        )
    return {name: p for name, p in params.items() if p.kind is p.KEYWORD_ONLY}


def _input_kind(params: dict[str, inspect.Parameter]) -> InputKind:
    image = "in_channels" in params or "input_size" in params
    if image and "in_features" in params:
        raise TypeError("a model builder takes either in_features or in_channels/input_size, not both")
    if image:
        return "image"
    return "vector" if "in_features" in params else "none"


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n\n")[0].replace("\n", " ")


def register(
    name: str,
    *,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    dataset: str | None = None,
    overwrite: bool = False,
) -> Callable[[Builder], Builder]:
    """Decorator: register a model builder under `name` with its default input shape and classes.

    Without defaults, callers of `build` must give the sizes themselves. Example::

        @dstbench.models.register("tiny_mlp", input_shape=(24,), num_classes=1)
        def tiny_mlp(*, in_features: int, num_classes: int, dropout: float = 0.0) -> nn.Module: ...
    """

    if not isinstance(name, str):
        raise TypeError(f"register takes the model's name first: use @register('my_model'), got {name!r}")

    def add(builder: Builder) -> Builder:
        if not name or not name.replace("_", "").isalnum() or name != name.lower():
            raise ValueError(f"model name {name!r} must be lower case letters, digits and '_'")
        if name in _MODELS and not overwrite:
            raise ValueError(f"model {name!r} is already registered; pass overwrite=True to replace it")
        params = _keyword_parameters(builder)
        kind = _input_kind(params)
        if input_shape is not None and kind == "image" and len(input_shape) != 3:
            raise ValueError(f"model {name!r} is an image model; its input_shape must be (C, H, W), got {input_shape}")
        options = {k: p.default for k, p in params.items() if k not in _SIZE_KEYS}
        required = [k for k, default in options.items() if default is inspect.Parameter.empty]
        if required:
            raise TypeError(f"model {name!r}: options need defaults so that build({name!r}) works: {', '.join(required)}")
        info = ModelInfo(
            name=name,
            input_kind=kind,
            input_shape=tuple(input_shape) if input_shape is not None else None,
            num_classes=num_classes,
            dataset=dataset,
            options=options,
            description=_first_line(builder.__doc__),
        )
        _MODELS[name] = (builder, info)
        return builder

    return add


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_MODELS)


def _lookup(name: str) -> tuple[Builder, ModelInfo]:
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(list_models())}") from None


def info(name: str) -> ModelInfo:
    """The defaults of model `name`: input kind and shape, classes, the paper's data set, options."""
    return _lookup(name)[1]


def _positive_int(model: str, key: str, value: Any) -> int:
    """`value` as an int (numpy integers welcome), or a ValueError naming the model and the key."""
    try:
        number = operator.index(value)
    except TypeError:
        number = 0
    if isinstance(value, bool) or number < 1:
        raise ValueError(f"model {model!r}: {key} must be a positive int, got {value!r}")
    return number


def _as_size(model: str, input_size: int | tuple[int, ...]) -> tuple[int, int]:
    size = (input_size, input_size) if not isinstance(input_size, tuple | list) else tuple(input_size)
    if len(size) != 2:
        raise ValueError(f"model {model!r}: input_size must be a positive int or (height, width), got {input_size!r}")
    height, width = (_positive_int(model, "input_size", s) for s in size)
    return height, width


def _default(model: ModelInfo, key: str, value: Any) -> Any:
    if value is None:
        raise ValueError(f"model {model.name!r} has no default {key}; pass {key}=... to build")
    return value


def _resolve_inputs(
    model: ModelInfo, in_channels: int | None, input_size: int | tuple[int, ...] | None, in_features: int | None
) -> dict[str, Any]:
    """The input keywords the builder declares, from the caller's values or the model's default shape."""
    shape = model.input_shape
    image_default = shape if shape is not None and len(shape) == 3 else None
    if model.input_kind == "image":
        if in_features is not None:
            raise ValueError(
                f"model {model.name!r} is convolutional: give in_channels and input_size, not in_features={in_features}"
            )
        if in_channels is None:
            in_channels = _default(model, "in_channels", image_default and image_default[0])
        if input_size is None:
            input_size = _default(model, "input_size", image_default and image_default[1:])
        return {
            "in_channels": _positive_int(model.name, "in_channels", in_channels),
            "input_size": _as_size(model.name, input_size),
        }
    if model.input_kind == "vector":
        if in_features is None and (in_channels is not None or input_size is not None):
            # An image data set for a model that flattens: fill a missing channel count or size from the default.
            if image_default is not None:
                in_channels = image_default[0] if in_channels is None else in_channels
                input_size = image_default[1:] if input_size is None else input_size
            if in_channels is None or input_size is None:
                raise ValueError(f"model {model.name!r} flattens its input: give in_features, or in_channels and input_size")
            channels = _positive_int(model.name, "in_channels", in_channels)
            in_features = channels * math.prod(_as_size(model.name, input_size))
        if in_features is None:
            in_features = _default(model, "in_features", shape and math.prod(shape))
        return {"in_features": _positive_int(model.name, "in_features", in_features)}
    given = {"in_channels": in_channels, "input_size": input_size, "in_features": in_features}
    extra = [k for k, v in given.items() if v is not None]
    if extra:
        raise TypeError(f"model {model.name!r} takes no input size ({', '.join(extra)})")
    return {}


def build(
    name: str,
    *,
    num_classes: int | None = None,
    in_channels: int | None = None,
    input_size: int | tuple[int, int] | None = None,
    in_features: int | None = None,
    dropout: float = 0.0,
    **options: Any,
) -> nn.Module:
    """A fresh model `name` whose input and output sizes fit the data set.

    Omitted sizes take the model's defaults (`info(name)`). Image models take `in_channels` and `input_size`
    (an int for square inputs, or (height, width)); models that flatten their input take `in_features`, or
    `in_channels` and `input_size` (then ``in_features = C * H * W``). `dropout` applies after each hidden
    activation of the models that have it; others accept only 0. Model options go in `options`.
    """
    builder, model_info = _lookup(name)
    params = _keyword_parameters(builder)
    unknown = sorted(set(options) - set(model_info.options))
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in inspect.signature(builder).parameters.values()):
        valid = ", ".join(f"{k}={v!r}" for k, v in model_info.options.items()) or "none"
        raise TypeError(f"model {name!r} has no option {', '.join(unknown)}; its options: {valid}")
    kwargs: dict[str, Any] = dict(options)
    kwargs.update(_resolve_inputs(model_info, in_channels, input_size, in_features))
    if "num_classes" in params:
        classes = num_classes if num_classes is not None else _default(model_info, "num_classes", model_info.num_classes)
        kwargs["num_classes"] = _positive_int(name, "num_classes", classes)
    elif num_classes is not None:
        raise TypeError(f"model {name!r} has a fixed output size; it takes no num_classes")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"model {name!r}: dropout must be in [0, 1), got {dropout}")
    if "dropout" in params:
        kwargs["dropout"] = dropout
    elif dropout:
        with_dropout = [n for n, (b, _) in sorted(_MODELS.items()) if "dropout" in _keyword_parameters(b)]
        raise ValueError(
            f"model {name!r} has no dropout option (got dropout={dropout}); models with one: {', '.join(with_dropout)}"
        )
    return builder(**kwargs)
