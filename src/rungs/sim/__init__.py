"""The simulator: stories run through the pure core on a virtual clock."""

from rungs.sim.runner import Simulation, SimulationError, run_story
from rungs.sim.story import Story, StoryError, StoryEvent, load_story

__all__ = [
    "Simulation",
    "SimulationError",
    "Story",
    "StoryError",
    "StoryEvent",
    "load_story",
    "run_story",
]
