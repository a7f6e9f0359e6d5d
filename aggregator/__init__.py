"""balanced-news: many outlets' feeds in, one balanced, well-attributed Atom feed out."""

__version__ = "0.1.0"
