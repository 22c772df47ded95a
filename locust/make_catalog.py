"""Writes catalog.json: the product catalog Locust draws sales from (deterministic, seed 2025).

Run again only to change the catalog: `python3 locust/make_catalog.py > locust/catalog.json`.
The same file is what the OCI artifact `catalog:<version>` carries (see docs/catalog.md)."""
import json
import random

CATEGORIES = {
    "Electronica": (["Televisor", "Laptop", "Audifonos", "Smartphone", "Tablet", "Monitor", "Consola",
                     "Camara", "Bocina", "Smartwatch"], (15.0, 2500.0)),
    "Ropa": (["Camisa", "Pantalon", "Chaqueta", "Vestido", "Zapatos", "Sudadero", "Gorra", "Bufanda",
              "Calcetines", "Falda"], (5.0, 300.0)),
    "Hogar": (["Sarten", "Licuadora", "Lampara", "Silla", "Sofa", "Almohada", "Cafetera", "Microondas",
               "Aspiradora", "Vajilla"], (8.0, 1200.0)),
    "Belleza": (["Perfume", "Crema", "Labial", "Shampoo", "Secadora", "Maquillaje", "Serum", "Rimel",
                 "Esmalte", "Plancha"], (3.0, 250.0)),
}
BRANDS = ["Andes", "Quetzal", "Maya", "Volcan", "Ceiba", "Jade", "Lago", "Tikal"]


def main():
    rng = random.Random(2025)
    products = []
    for category, (kinds, (low, high)) in CATEGORIES.items():
        prefix = category[:3].upper()
        for i in range(75):
            kind = kinds[i % len(kinds)]
            brand = rng.choice(BRANDS)
            # Log-uniform prices: many cheap products, a few expensive ones.
            price = round(low * (high / low) ** rng.random(), 2)
            products.append({"id": f"{prefix}-{i + 1:03d}", "name": f"{kind} {brand} {i + 1}",
                             "category": category, "base_price": price})
    print(json.dumps({"version": 1, "products": products}, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
