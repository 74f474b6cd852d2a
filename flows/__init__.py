"""The Prefect layer of kademe: tasks wrap the stage functions of kademe, flows chain them."""
