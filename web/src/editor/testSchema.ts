// The committed schema, imported as the build imports it, for the editor's tests.
import schemaJson from '../../../docs/template.schema.json';
import type { TemplateSchema } from './schema';

export const SCHEMA = schemaJson as unknown as TemplateSchema;
