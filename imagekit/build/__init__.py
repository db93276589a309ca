"""`imagekit build`: Builderfile stages to images (see ARCHITECTURE.md; context.py and copy_*.py serve COPY/ADD)."""
