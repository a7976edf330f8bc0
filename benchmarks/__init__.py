"""polylin's benchmark suite: polylin against hand-written loops in each framework (``nox -s bench``)."""
