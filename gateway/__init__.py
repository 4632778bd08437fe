"""The gateway: Starlette and Strawberry, translating GraphQL to application calls and back."""
