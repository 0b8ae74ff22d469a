"""``python -m autodiff``: the tour of the engine."""
from .tour import main

main()
