"""imagekit: a daemonless OCI image toolkit (build, move and run container images without a daemon)."""

__version__ = "0.1.0.dev0"
