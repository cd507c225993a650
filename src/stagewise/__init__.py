"""stagewise: keeps a crypto portfolio on a life-stage plan by proposing, never placing, orders."""

__version__ = "0.1.0"
