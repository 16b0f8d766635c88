"""Exception types. Every error a user can cause derives from :class:`AnalogEPError`;
the CLI prints its message and exits with status 2 instead of showing a traceback."""


class AnalogEPError(Exception):
    """Base class of every error the package raises on bad input or failed physics."""


class NetworkError(AnalogEPError, ValueError):
    """A network graph is invalid; the message names the node or edge at fault."""


class NetlistError(AnalogEPError, ValueError):
    """A network file cannot be read; the message names the file and the line."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path, self.line = path, line


class ConvergenceError(AnalogEPError, RuntimeError):
    """An equilibrium solver or sampler did not converge; the message gives the residual."""


class ConfigError(AnalogEPError, ValueError):
    """A command-line flag, a setting or a data set does not fit the network."""


class SubstrateError(AnalogEPError, RuntimeError):
    """A substrate (a board, a simulator) failed while doing physics for a rule; the
    training loop saves a checkpoint before it stops on one."""


class SubstrateDisconnectedError(SubstrateError, ConnectionError):
    """The substrate's link went away; the training loop asks the objective to reconnect
    (``reconnect()``) and repeats the work, a bounded number of times."""


class DeviceError(ConfigError):
    """A device file or preset is invalid; the message names the file and the key."""
