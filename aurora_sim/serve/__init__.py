"""`aurora serve`: an HTTP server around TorchSpecEngine (OpenAI- and SGLang-compatible).

Modules: config (limits and addresses), worker (the one engine thread; continuous batching
across clients), params (request bodies -> GenRequest, with clear 400s), weights (safe draft
loading for /update_weights_from_disk), metrics (Prometheus text), guards (auth and body-size
ASGI middleware), app (the routes), cli (`serve_command`).
"""
