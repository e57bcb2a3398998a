"""One module per verb group, between the command line and the library: typed arguments in,
result objects out, progress through a ``Reporter``; nothing here prints.

``project`` (init, resolve, lock), ``build`` (native build and outputs), ``eject``
(Dockerfile, and building it with an engine), ``registry`` (push, pull), ``run`` (run, shell,
jupyter, ssh, ps, stop), ``check`` (doctor, verify, lint)."""
