-- Rooms for local use; applied by `npm run dev` and the e2e server (idempotent).
-- Categories must be among ROOM_CATEGORIES in src/routes/rooms.ts. Located rooms are left to the
-- suggestions seed, whose `cell` must come from `cellOf` (src/geo.ts).
INSERT OR IGNORE INTO rooms (id, name, category, description, lat, lon, cell, created_by, created_at) VALUES
  ('general', 'General', 'general', 'Say hello.', NULL, NULL, NULL, 'system', 1767225600000),
  ('random', 'Random', 'general', 'Anything goes.', NULL, NULL, NULL, 'system', 1767225600000),
  ('typescript', 'TypeScript', 'tech', 'Types, compilers and tooling.', NULL, NULL, NULL, 'system', 1767225600000),
  ('durable-objects', 'Durable Objects', 'tech', 'Stateful serverless on Cloudflare.', NULL, NULL, NULL, 'system', 1767225600000),
  ('astronomy', 'Astronomy', 'science', 'Telescopes, launches and dark skies.', NULL, NULL, NULL, 'system', 1767225600000),
  ('football', 'Football', 'sports', 'Matches, transfers and tactics.', NULL, NULL, NULL, 'system', 1767225600000),
  ('running', 'Running', 'sports', 'Training plans and races.', NULL, NULL, NULL, 'system', 1767225600000),
  ('indie-games', 'Indie games', 'gaming', 'What are you playing?', NULL, NULL, NULL, 'system', 1767225600000),
  ('jazz', 'Jazz', 'music', 'Records, gigs and practice.', NULL, NULL, NULL, 'system', 1767225600000),
  ('sketchbook', 'Sketchbook', 'arts', 'Share what you drew today.', NULL, NULL, NULL, 'system', 1767225600000),
  ('world-news', 'World news', 'news', 'Headlines and discussion.', NULL, NULL, NULL, 'system', 1767225600000),
  ('meta', 'About this chat', 'other', 'Feedback and questions about the service.', NULL, NULL, NULL, 'system', 1767225600000);
