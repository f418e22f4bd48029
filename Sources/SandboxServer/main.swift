print("flexcharge-sandbox")
