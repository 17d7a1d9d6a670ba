"""Entry point of the child process that performs a full read (see `offload`)."""

from headwater.adapters.connectors.stripe.offload import serve

if __name__ == "__main__":
    serve()
