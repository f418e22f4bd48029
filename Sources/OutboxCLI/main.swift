print("flexcharge-outbox")
