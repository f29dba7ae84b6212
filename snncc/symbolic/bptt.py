"""Exact BPTT: the surrogate-gradient backpropagation through time of the same discrete update.

eProp's factorised form already runs the exact adjoint of every neuron's own state:
lam^t = w^t g^t + lam^{t+1} D^{t+1}, with Q^t = lam^t . c^t the adjoint of the neuron's synaptic
input and dW[i, j] = sum_t s_i^{t-d} Q_j^t. The two differ only in the signal w^t = dLoss/dz^t
of each spike. eProp feeds back the readout's filtered error through B (and drops every path
through other neurons); BPTT takes the true one: every projection q that the neuron's spikes
leave through, with delay d, carries back its postsynaptic input adjoint,

    dLoss/dz_j^t = sum_q sum_i W_q[j, i] Q_{post(q), i}^{t + d_q}  (+ the regulariser's R_j^t),

where the readout's Q is dLoss/dI_out (its exact adjoint). So BPTT is this module (the rule and
its equations) and its printing; the traces D, c, g are eProp's, derived from the same
DiscreteUpdate (symbolic/eprop.py). The reset's spike is detached and on_spike effects keep
their gradient through the surrogate: the same convention as eProp (eprop.md), so on a
feed-forward network both rules give the same gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

from snncc.symbolic.eprop import RuleEquations, RuleOptions, rule_equations


@dataclass
class BPTT(RuleOptions):
    """Exact surrogate-gradient BPTT, with the options of EProp that apply to it.

    Args: readout, regularizer, c_reg, f_target, tau_reg, reg_state, reg_signal, loss,
    decision, error_start, weight_clamp, train_bias, average_gradient: as for EProp. The
    regulariser's signal R^t is added to every spike's dLoss/dz^t (for "sequence" this is the
    exact gradient of c_reg/2 sum_j (n_spikes_j/T - f_target)^2). Memory is O(B T N); the
    backward recursion over time runs in the generated code.
    """

    exact = True
    strategy = "factorized"

    def equations(self) -> RuleEquations:
        mode, state, signal = self._regulariser()
        # the readout's exact adjoint is the error filtered by kappa with gain 1
        return rule_equations("kappa", "1", mode, state, signal)
