CREATE TABLE `room_members` (
	`room_id` text NOT NULL,
	`user_id` text NOT NULL,
	`added_at` integer NOT NULL,
	PRIMARY KEY(`room_id`, `user_id`)
);
--> statement-breakpoint
CREATE INDEX `room_members_user_idx` ON `room_members` (`user_id`,`room_id`);--> statement-breakpoint
ALTER TABLE `rooms` ADD `visibility` text DEFAULT 'public' NOT NULL;