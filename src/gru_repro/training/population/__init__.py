"""Population training: the learning-rate candidates of one (data set, unit, seed) trained
together, parameters stacked along a leading member dimension P.

Every piece here reproduces, member by member and bit for bit, what a single run does:
``optim`` (both RMSProp forms, one lr per member), ``schedule`` (torch's constant and linear
schedules per member), ``clipping`` (each member's own gradient norm, overflow rescue per
member), ``noise`` (one weight-noise draw shared by all members) and ``members`` (a member's
state as a single run's, and back).
"""

from gru_repro.training.population.clipping import (
    backward_and_clip_members,
    clip_member_gradient_norms,
    member_gradient_norms,
)
from gru_repro.training.population.members import (
    keep_members_,
    load_member_states,
    member_optimizer_state_dict,
    member_schedule_state_dict,
    member_state_dict,
    stack_state_dicts,
)
from gru_repro.training.population.noise import PopulationWeightNoise, noisy_member_parameter_names
from gru_repro.training.population.optim import (
    PopulationFlooredRMSprop,
    PopulationRMSprop,
    build_population_optimization,
    build_population_optimizer,
)
from gru_repro.training.population.schedule import PopulationSchedule, build_population_schedule
from gru_repro.training.population.stacked import (
    PopulationOptimizer,
    vectorised_lr_ops_are_exact,
)

__all__ = [
    "PopulationFlooredRMSprop",
    "PopulationOptimizer",
    "PopulationRMSprop",
    "PopulationSchedule",
    "PopulationWeightNoise",
    "backward_and_clip_members",
    "build_population_optimization",
    "build_population_optimizer",
    "build_population_schedule",
    "clip_member_gradient_norms",
    "keep_members_",
    "load_member_states",
    "member_gradient_norms",
    "member_optimizer_state_dict",
    "member_schedule_state_dict",
    "member_state_dict",
    "noisy_member_parameter_names",
    "stack_state_dicts",
    "vectorised_lr_ops_are_exact",
]
