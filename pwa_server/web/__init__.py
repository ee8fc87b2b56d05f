"""The web layer: the only package that imports starlette and uvicorn."""
