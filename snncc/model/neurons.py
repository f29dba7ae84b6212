"""Built-in neuron models, written with the same public NeuronModel API a user has.

The equations follow ../shared/reference/eprop.md: delta synapses (input enters the membrane
directly), reset by subtraction, the piecewise-linear pseudo-derivative with gamma = 0.3.
"""

from __future__ import annotations

from snncc.model.neuron import NeuronModel

#: Bellec et al.'s pseudo-derivative: (gamma / v_th) * max(0, 1 - |v - A| / v_th).
TRIANGLE = "gamma / v_th * max(0, 1 - abs(margin) / v_th)"


def LIF(
    tau_m: object = 20.0,
    v_th: float = 0.6,
    gamma: float = 0.3,
    refractory: float = 0.0,
) -> NeuronModel:
    """Leaky integrate-and-fire neuron with delta synapses and reset by subtraction."""
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
        positive=("tau_m", "v_th"),
    )


def ALIF(
    tau_m: object = 20.0,
    tau_a: object = 2000.0,
    beta: object = 0.0174,
    v_th: float = 0.6,
    gamma: float = 0.3,
    refractory: float = 0.0,
) -> NeuronModel:
    """Adaptive LIF ("LSNN"): the threshold v_th + beta * a rises by beta after each spike."""
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
        positive=("tau_m", "tau_a", "v_th"),
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
