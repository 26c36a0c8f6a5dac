CREATE TABLE `suggestion_notices` (
	`user_id` text NOT NULL,
	`area` text NOT NULL,
	`day` integer NOT NULL,
	`sent_at` integer NOT NULL,
	PRIMARY KEY(`user_id`, `area`, `day`)
);
--> statement-breakpoint
DROP INDEX `user_locations_cell_idx`;--> statement-breakpoint
ALTER TABLE `user_locations` ADD `x` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `user_locations` ADD `y` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `user_locations` ADD `z` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `user_locations` ADD `source` text DEFAULT 'client' NOT NULL;--> statement-breakpoint
CREATE INDEX `user_locations_near_idx` ON `user_locations` (`cell`,`updated_at`,`x`,`y`,`z`,`user_id`);