"""ngspice in process: a small ctypes layer over its shared library (:mod:`.shared`)."""
