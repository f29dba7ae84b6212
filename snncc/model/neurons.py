"""Built-in neuron models, written with the same public NeuronModel API a user has.

The equations follow ../shared/reference/eprop.md: delta synapses (input enters the membrane
directly), reset by subtraction, the piecewise-linear pseudo-derivative with gamma = 0.3.
"""

from __future__ import annotations

from snncc.errors import ModelError
from snncc.model.neuron import NeuronModel

#: Bellec et al.'s pseudo-derivative: (gamma / v_th) * max(0, 1 - |v - A| / v_th).
TRIANGLE = "gamma / v_th * max(0, 1 - abs(margin) / v_th)"


def LIF(
    tau_m: object = 20.0,
    v_th: float = 0.6,
    gamma: float = 0.3,
    refractory: float = 0.0,
    trainable: tuple[str, ...] = (),
) -> NeuronModel:
    """Leaky integrate-and-fire neuron with delta synapses and reset by subtraction.

    ``trainable``: parameters learned per neuron (e.g. ("tau_m", "v_th")); kept > 0."""
    return NeuronModel(
        name="LIF",
        params={"tau_m": tau_m, "v_th": v_th, "gamma": gamma},
        state={"v": 0.0},
        dynamics=["dv/dt = -v / tau_m"],
        reset={"v": "v - v_th"},
        input={"v": "I_syn"},
        threshold="v > v_th",
        refractory=refractory,
        surrogate=TRIANGLE,
        trainable=trainable,
        positive=("tau_m", "v_th"),
    )


def ALIF(
    tau_m: object = 20.0,
    tau_a: object = 2000.0,
    beta: object = 0.0174,
    v_th: float = 0.6,
    gamma: float = 0.3,
    refractory: float = 0.0,
    trainable: tuple[str, ...] = (),
) -> NeuronModel:
    """Adaptive LIF ("LSNN"): the threshold v_th + beta * a rises by beta after each spike.

    ``trainable``: parameters learned per neuron (e.g. ("tau_m", "tau_a")); time constants and
    the threshold are kept > 0."""
    return NeuronModel(
        name="ALIF",
        params={"tau_m": tau_m, "tau_a": tau_a, "beta": beta, "v_th": v_th, "gamma": gamma},
        state={"v": 0.0, "a": 0.0},
        dynamics=["dv/dt = -v / tau_m", "da/dt = -a / tau_a"],
        reset={"v": "v - v_th"},
        on_spike={"a": "a + 1"},
        input={"v": "I_syn"},
        threshold="v > v_th + beta * a",
        refractory=refractory,
        surrogate=TRIANGLE,
        trainable=trainable,
        positive=("tau_m", "tau_a", "v_th"),
    )


def AdLIF(
    tau_m: object = 20.0,
    tau_w: object = 200.0,
    a: object = 0.5,
    b: object = 1.0,
    v_th: object = 1.0,
    gamma: float = 0.3,
    refractory: float = 0.0,
    trainable: tuple[str, ...] = (),
    integration: str = "symplectic_euler",
) -> NeuronModel:
    """Adaptive LIF of Bittar & Garner (2022) and SE-adLIF (Baronig et al. 2024): an adaptation
    current w, driven by the membrane (a) and by each spike (b), is subtracted from the input.

        tau_m dv/dt = -v - w + I_syn,   tau_w dw/dt = -w + a v,   spike: w += (1 - e^{-dt/tau_w}) b

    With ``integration="symplectic_euler"`` (the default, SE-adLIF's) v steps first, exactly
    given w, then w from the new v: v' = e_m v + (1 - e_m)(I - w), w' = e_w w + (1 - e_w) a v'.
    Reset by subtraction; ``trainable`` e.g. ("tau_m", "tau_w", "a", "b"), the time constants
    and the threshold kept > 0.
    """
    return NeuronModel(
        name="AdLIF",
        params={"tau_m": tau_m, "tau_w": tau_w, "a": a, "b": b, "v_th": v_th, "gamma": gamma},
        state={"v": 0.0, "w": 0.0},
        dynamics=["dv/dt = (-v - w + I_syn) / tau_m", "dw/dt = (-w + a * v) / tau_w"],
        reset={"v": "v - v_th"},
        on_spike={"w": "w + (1 - exp(-dt / tau_w)) * b"},
        threshold="v > v_th",
        refractory=refractory,
        surrogate=TRIANGLE,
        trainable=trainable,
        positive=("tau_m", "tau_w", "v_th"),
        integration=integration,
    )


def LeakyIntegrator(tau: object = 20.0, bias: bool | object = True) -> NeuronModel:
    """Non-spiking readout: v <- exp(-dt/tau) v + I_syn + bias; ``bias`` is trainable.

    ``bias=True`` starts the bias at 0; a number or array sets its initial value; ``False``
    leaves it out.
    """
    params = {"tau": tau}
    if bias is not False:
        params["bias"] = 0.0 if bias is True else bias
    return NeuronModel(
        name="LeakyIntegrator",
        params=params,
        state={"v": 0.0},
        dynamics=["dv/dt = -v / tau"],
        input={"v": "I_syn + bias" if bias is not False else "I_syn"},
        trainable=("bias",) if bias is not False else (),
        positive=("tau",),
        output="v",
    )


def SpikeInput() -> NeuronModel:
    """A population whose spikes come from the data."""
    return NeuronModel(name="SpikeInput", is_input=True)


# ------------------------------------------------------------------ NIR's neuron nodes
# The models below are NIR's LIF, CubaLIF, LI, IF and I nodes with NIR's parameter names,
# discretised as docs/nir.md explains: one step decays the state over dt, a neuron that spiked
# restarts from v_reset (which then decays over the step like any value), and the input current
# of the step, r * (I_syn + bias), is held over the step. ``bias`` is the constant current an
# Affine node adds; ``gamma`` scales the surrogate used for learning (not part of NIR).

INTEGRATIONS = ("exact", "euler")
RESETS = ("value", "subtract")


def _decay_and_gain(tau: str, integration: str) -> tuple[str, str]:
    """(decay factor, input gain) of ``tau dv/dt = -v + input`` over one step, as equations."""
    if integration == "exact":
        return f"exp(-dt / {tau})", f"(1 - exp(-dt / {tau}))"
    if integration == "euler":
        return f"(1 - dt / {tau})", f"dt / {tau}"
    raise ModelError(
        f"integration '{integration}' is not one of {', '.join(INTEGRATIONS)} "
        "(exact: exp(-dt/tau); euler: 1 - dt/tau, as snnTorch and Norse step NIR graphs)"
    )


def _reset(model: str, reset: str, after_reset: str) -> dict[str, str]:
    if reset == "value":
        return {"v": after_reset}
    if reset == "subtract":
        return {"v": "v - v_threshold"}
    raise ModelError(f"neuron model '{model}': reset '{reset}' is not one of {', '.join(RESETS)}")


def _reset_params(reset: str, v_reset: object) -> dict[str, object]:
    return {"v_reset": v_reset} if reset == "value" else {}


#: The surrogate of the NIR models (TRIANGLE with NIR's threshold name).
NIR_TRIANGLE = "gamma / v_threshold * max(0, 1 - abs(margin) / v_threshold)"


def NIRLIF(
    tau: object = 20.0,
    v_threshold: object = 1.0,
    r: object = 1.0,
    v_leak: object = 0.0,
    v_reset: object = 0.0,
    bias: object = 0.0,
    reset: str = "value",
    integration: str = "exact",
    gamma: float = 0.3,
) -> NeuronModel:
    """NIR's LIF: ``tau dv/dt = (v_leak - v) + r I``, spike if v > v_threshold, v -> v_reset.

    ``reset="subtract"`` subtracts v_threshold instead (snnTorch's default), which NIR cannot
    express: such a population imports from NIR but does not export to it.
    """
    decay, gain = _decay_and_gain("tau", integration)
    return NeuronModel(
        name="NIRLIF",
        params={
            "tau": tau,
            "r": r,
            "v_leak": v_leak,
            "v_threshold": v_threshold,
            **_reset_params(reset, v_reset),
            "bias": bias,
            "gamma": gamma,
        },
        state={"v": 0.0},
        dynamics=["dv/dt = (v_leak - v) / tau"],
        reset=_reset("NIRLIF", reset, f"v_leak + (v_reset - v_leak) * {decay}"),
        input={"v": f"r * {gain} * (I_syn + bias)"},
        threshold="v > v_threshold",
        surrogate=NIR_TRIANGLE,
        integration=integration,
    )


def CubaLIF(
    tau_mem: object = 20.0,
    tau_syn: object = 5.0,
    v_threshold: object = 1.0,
    r: object = 1.0,
    v_leak: object = 0.0,
    v_reset: object = 0.0,
    w_in: object = 1.0,
    bias: object = 0.0,
    reset: str = "value",
    integration: str = "exact",
    gamma: float = 0.3,
) -> NeuronModel:
    """NIR's current-based LIF: tau_syn dI/dt = -I + w_in S, tau_mem dv/dt = v_leak - v + r I.

    The membrane integrates the current of the end of the step (the current first takes the
    step's input), which is snnTorch's Synaptic neuron exactly under ``integration="euler"``.
    """
    decay_m, gain_m = _decay_and_gain("tau_mem", integration)
    _, gain_s = _decay_and_gain("tau_syn", integration)
    return NeuronModel(
        name="CubaLIF",
        params={
            "tau_mem": tau_mem,
            "tau_syn": tau_syn,
            "r": r,
            "v_leak": v_leak,
            "v_threshold": v_threshold,
            **_reset_params(reset, v_reset),
            "w_in": w_in,
            "bias": bias,
            "gamma": gamma,
        },
        state={"v": 0.0, "I": 0.0},
        dynamics=["dI/dt = -I / tau_syn", "dv/dt = (v_leak - v) / tau_mem"],
        reset=_reset("CubaLIF", reset, f"v_leak + (v_reset - v_leak) * {decay_m}"),
        # in this order: the current takes the step's input, then the membrane integrates it
        input={"I": f"w_in * {gain_s} * (I_syn + bias)", "v": f"r * {gain_m} * I"},
        threshold="v > v_threshold",
        surrogate=NIR_TRIANGLE,
        integration=integration,
        output="v",
    )


def LI(
    tau: object = 20.0,
    r: object = 1.0,
    v_leak: object = 0.0,
    bias: object = 0.0,
    integration: str = "exact",
) -> NeuronModel:
    """NIR's leaky integrator ``tau dv/dt = (v_leak - v) + r I``: a readout, ``bias`` trainable."""
    _, gain = _decay_and_gain("tau", integration)
    return NeuronModel(
        name="LI",
        params={"tau": tau, "r": r, "v_leak": v_leak, "bias": bias},
        state={"v": 0.0},
        dynamics=["dv/dt = (v_leak - v) / tau"],
        input={"v": f"r * {gain} * (I_syn + bias)"},
        trainable=("bias",),
        integration=integration,
        output="v",
    )


def IF(
    v_threshold: object = 1.0,
    r: object = 1.0,
    v_reset: object = 0.0,
    bias: object = 0.0,
    reset: str = "value",
    gamma: float = 0.3,
) -> NeuronModel:
    """NIR's integrate-and-fire neuron: ``dv/dt = r I`` (exact in one step), v -> v_reset."""
    return NeuronModel(
        name="IF",
        params={
            "r": r,
            "v_threshold": v_threshold,
            **_reset_params(reset, v_reset),
            "bias": bias,
            "gamma": gamma,
        },
        state={"v": 0.0},
        reset=_reset("IF", reset, "v_reset"),
        input={"v": "r * dt * (I_syn + bias)"},
        threshold="v > v_threshold",
        surrogate=NIR_TRIANGLE,
    )


def Integrator(r: object = 1.0, bias: object = 0.0) -> NeuronModel:
    """NIR's integrator node I, ``dv/dt = r I``: a non-spiking readout, ``bias`` trainable."""
    return NeuronModel(
        name="Integrator",
        params={"r": r, "bias": bias},
        state={"v": 0.0},
        input={"v": "r * dt * (I_syn + bias)"},
        trainable=("bias",),
        output="v",
    )
