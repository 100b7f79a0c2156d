// npm run gen:schema: rewrites manifests/lokistack.schema.json from the zod schema.
import { writeFileSync } from "node:fs";
import { JSON_SCHEMA_PATH, lokiStackJsonSchemaText } from "./json-schema.ts";

writeFileSync(JSON_SCHEMA_PATH, lokiStackJsonSchemaText());
console.log(`wrote ${JSON_SCHEMA_PATH}`);
