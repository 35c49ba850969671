"""Stripe through dj-stripe: webhook receivers, the services they call, and refunds."""
